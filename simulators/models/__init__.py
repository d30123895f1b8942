"""Pure, seeded models of the city: rain, tide, street flooding, traffic and camera scenes."""
