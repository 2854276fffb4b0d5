"""Who a request to the emulator comes from, and whether IAM would let it through."""
