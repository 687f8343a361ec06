"""The paper's own file formats (reference test-set files, HF layouts), read into the canonical schema."""
