from cnet.cli.main import main

main()
