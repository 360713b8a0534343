# Convenience aliases; ./dev is the entry point (a fresh Debian has no make).
.PHONY: run test corpus bench
run:
	./dev run
test:
	./dev test
corpus:
	./dev corpus
bench:
	./dev bench
