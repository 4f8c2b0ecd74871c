"""The family formats shared by the app and the platform."""
