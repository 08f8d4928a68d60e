from memllm_cli.cli import main

main()
