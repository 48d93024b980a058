"""SCIM 2.0 provisioning (RFC 7643/7644) of the gateway's directory.

The protocol — validation, PATCH, paging, discovery and error documents — is scim2-server's;
this package says what the gateway announces (`provider`), how Entra's bodies are read
(`quirks`), how filters become indexed look-ups (`filters`), how resources map to people
and teams (`mapping`) and how the directory stores them (`storage`).
"""
