// Element tests (issue 2).
