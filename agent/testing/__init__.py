"""Test helpers shipped with the package (no network, no heavy imports at package import).

`agent.testing.fake_anthropic` drives the real `anthropic` client against a scripted HTTP
transport, so tests of the claude policy and the LLM judge never reach the Anthropic API.
"""
