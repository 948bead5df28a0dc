"""The kimari expression language: parse, type-check, and compile to Python."""
