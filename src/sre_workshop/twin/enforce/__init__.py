"""Pure decisions of the twin (IAM verdicts, capacity tokens), called by the data path; no HTTP, no I/O."""
