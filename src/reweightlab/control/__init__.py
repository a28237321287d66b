"""Continuous control from offline data: BC, filtered BC (SFT), SFT(Q), iw-SFT(Q)."""
