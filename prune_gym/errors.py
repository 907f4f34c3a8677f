"""prune_gym's exceptions: each message says what was wrong and what to do."""


class PruneGymError(Exception):
    """Base class of prune_gym's own errors (the CLI prints them as one line)."""


class DatasetUnavailableError(PruneGymError):
    """A dataset is neither on disk nor downloadable (offline)."""


class CheckpointError(PruneGymError):
    """A cached checkpoint is corrupted or does not match its task's model."""


class CheckpointMissingError(PruneGymError):
    """A task has no trained checkpoint yet and does not pretrain automatically."""


class RunError(PruneGymError):
    """A run folder is missing, incomplete or would be overwritten."""
