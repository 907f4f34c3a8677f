"""AMC-style DDPG on stable-baselines3 (He et al., ECCV 2018)."""

from agents.ddpg.amc import AMCAgent, EpisodeRewardBuffer, TruncatedNormalNoise

__all__ = ["AMCAgent", "EpisodeRewardBuffer", "TruncatedNormalNoise"]
