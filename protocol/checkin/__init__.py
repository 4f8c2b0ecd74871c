"""The checkin formats shared by the app and the platform."""
