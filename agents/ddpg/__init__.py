"""AMC-style DDPG on stable-baselines3 (He et al., ECCV 2018)."""

from .amc import AMCAgent, EpisodeRewardBuffer, TruncatedNormalNoise

__all__ = ["AMCAgent", "EpisodeRewardBuffer", "TruncatedNormalNoise"]
