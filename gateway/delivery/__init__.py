"""Getting hooks and notifications out: the outbox written with each transition, the
dispatcher, and the HTTP and SMTP clients."""
