"""Sweeps: lists of run specs trained by an executor (local processes or SLURM via submitit)."""
