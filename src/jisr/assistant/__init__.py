"""The Arabic-first assistant: Arabic normalisation and dialect handling, the retrieval index over
the catalogue, answers with citations, the optional local LLM adapter, evaluation.

This building block is planned; see docs/architecture.md for its place in the map.
"""
