# Developer entry points. `make help` lists them.
SHELL := /usr/bin/env bash

MOTO_PORT ?= 4566
HTTP_PORT ?= 3000
SIM_PORT ?= 4010
export MOTO_PORT HTTP_PORT SIM_PORT

.DEFAULT_GOAL := help
.PHONY: help venv run test lint-template fmt build-lambda deploy esimctl

help:
	@echo "make run            run everything locally: moto on MOTO_PORT ($(MOTO_PORT)), the API on"
	@echo "                    http://127.0.0.1:$(HTTP_PORT), the provider simulator on SIM_PORT ($(SIM_PORT))"
	@echo "make esimctl ARGS=  the admin CLI against the local stack, e.g."
	@echo "                    make esimctl ARGS='tenant create \"Acme Travel\"'"
	@echo "make test           formatting, clippy, every test against moto, cfn-lint (what CI runs)"
	@echo "make lint-template  cfn-lint template.yaml"
	@echo "make fmt            format the workspace"
	@echo "make build-lambda   release arm64 Lambda binaries with cargo-lambda (target/lambda/)"
	@echo "make deploy         how to deploy with the AWS SAM CLI"

venv:
	@bash infra/venv.sh run

run:
	@bash infra/run-local.sh

test:
	@bash infra/test.sh

# The admin CLI against the running local stack (same table name and endpoint as `make run`).
# `make run` writes .local/local-stack.env (table, endpoint, provider settings) when it starts.
esimctl:
	@set -a; [[ -f .local/local-stack.env ]] && . .local/local-stack.env; set +a; \
	  AWS_ENDPOINT_URL=$${AWS_ENDPOINT_URL:-http://127.0.0.1:$(MOTO_PORT)} \
	  TABLE_NAME=$${TABLE_NAME:-$${STACK_NAME:-esim-local}} \
	  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 \
	  cargo run -q -p esimctl -- $(ARGS)

lint-template:
	@bash infra/venv.sh test
	.venv/bin/cfn-lint template.yaml

fmt:
	cargo fmt --all

build-lambda:
	@bash infra/venv.sh run
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --release --arm64

deploy:
	@echo "Deployment uses the AWS SAM CLI (not installed by this project) and its cargo-lambda"
	@echo "builder, which SAM still marks as beta; cargo-lambda must be on PATH (make venv puts"
	@echo "it in .venv/bin):"
	@echo ""
	@echo "  PATH=\"$(CURDIR)/.venv/bin:\$$PATH\" sam build --beta-features"
	@echo "  sam deploy --guided"
	@echo ""
	@echo "Optional parameters: NotificationWebhookUrl and NotificationWebhookApiKey (both needed"
	@echo "for webhook delivery of LowBalance and PlanExpiring), ApiThrottlingRateLimit,"
	@echo "ApiThrottlingBurstLimit, LogRetentionInDays."
