"""Trust: signing images and the gate that checks signatures before a promotion."""
