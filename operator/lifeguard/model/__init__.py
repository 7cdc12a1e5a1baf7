"""Pure types of the JobPolicy API and of what the operator observes. No I/O here."""
