"""TechEmpower test types on blazeasgi, FastAPI and Granian: ``python -m benchmarks.techempower``."""
