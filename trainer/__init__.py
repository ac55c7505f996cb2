"""Model loading, the MCPGymEnv environment, rollouts, PPO, the run store and the trainer process."""
