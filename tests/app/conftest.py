"""Fixtures of the app's tests."""

from tests.serving.fake_tf_serving import fake  # noqa: F401  (a fixture)
