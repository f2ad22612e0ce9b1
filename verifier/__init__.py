"""verifier: the verification of sealed documents (issue 7), a package of its own (issue 24)."""
