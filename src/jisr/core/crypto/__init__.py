"""Keys, JWS, X.509 and the instance certificate authority."""
