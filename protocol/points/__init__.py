"""The points formats shared by the app and the platform."""
