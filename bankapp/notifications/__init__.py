"""What the bank tells people by email: the transactional outbox (``outbox``) and the alerts
customers choose (``alerts``). Every message is a row written in the caller's transaction."""
