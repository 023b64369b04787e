from zkq.cli import main

main()
