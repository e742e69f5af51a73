"""Administration: users and roles, the audit trail, mail, interest rates."""
