"""Access requests and their rules: the state machine, the operations, permissions, the
listing language and the scheduler."""
