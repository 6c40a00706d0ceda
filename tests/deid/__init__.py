"""Tests of the de-identification engine (medspace.deid)."""
