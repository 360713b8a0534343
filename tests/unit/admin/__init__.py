"""Tests of the review service, the reject notice and the admin CLI."""
