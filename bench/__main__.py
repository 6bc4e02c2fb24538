from bench.onboarding import main

main()
