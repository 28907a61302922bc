"""The company's look, set by admins: logo, colours, texts per language, email sender."""
