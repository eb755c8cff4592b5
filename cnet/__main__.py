from cnet.cli.entry import main

main()
