"""Modal screens: help and confirmation. The main layout is composed by the app itself."""
