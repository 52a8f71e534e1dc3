"""Per-role settings models. Each role owns one; ``llmrack.config.TierProfile`` composes them.

Defaults live once, in ``Field(default, description=...)``; tiers/*.yaml set only what differs.
"""
