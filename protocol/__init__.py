"""What the Mamori app and a city platform agree on: entity shapes, QR and token formats,
wire JSON, error codes and hazard constants. No I/O, no UI, no server packages, so the client
and the reference platform (``cityos``) share one definition and tests catch drift."""
