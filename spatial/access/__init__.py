"""Travel times per building, isochrones and areas of responsibility."""
