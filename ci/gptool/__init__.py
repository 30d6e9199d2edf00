"""Harness for the grouped page allocator: kernel tree preparation and kunit.py runs."""
