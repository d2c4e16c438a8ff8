"""Covering solvers and the siting of new micro-stations and hydrants."""
