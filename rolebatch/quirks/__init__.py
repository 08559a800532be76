"""Workarounds for the libraries we build on, one small module per library,
so that an upgrade touches one place.

    instructor      how rolebatch calls it, and a memo for its per-call
                    async-validator check
    openai_aiohttp  what a "timeout" from openai's aiohttp adapter really was
    glibc           the allocator told to give large blocks back (flat memory)
"""
