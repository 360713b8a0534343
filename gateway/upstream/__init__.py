"""Upstream relay: pooled aiosmtplib connections to the next hop."""
