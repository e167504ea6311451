from .cli import main

if __name__ == "__main__":  # worker processes (spawned) import this module again as __mp_main__
    main()
