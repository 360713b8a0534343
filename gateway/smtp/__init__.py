"""SMTP front end: aiosmtpd server, session handler, replies."""
