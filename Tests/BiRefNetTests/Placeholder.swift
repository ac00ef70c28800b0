// Native BiRefNet parity tests live in this target (see issue 4).
