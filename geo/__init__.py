"""Region data shared by the app and the reference platform: reading a region's public files
into SQLite, hazard layers, the walking network and evacuation routing. Imports only
``protocol``; no UI, no network."""
