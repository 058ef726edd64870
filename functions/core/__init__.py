"""Pieces every step shares: the result contract, named errors, configuration, clock and AWS clients."""
