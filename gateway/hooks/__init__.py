"""What a transition says to the outside, rendered without I/O: the payload, the webhook body,
the XML mailhook, mail messages and notifications. (Signatures are `gateway.signing`: a public
API, SPEC §4.)"""
