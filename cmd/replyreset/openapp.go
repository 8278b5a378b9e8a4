package main

import (
	"log/slog"
)

// openApp returns the whole product for cfg: the running server's when the
// command runs inside it, else one wired here (no workers started).
// loadApp loads the -config file and opens the app on it (openApp).
func (env *cmdEnv) loadApp(path string) (*Config, *app, func(), error) {
	cfg, err := loadConfigFlag(path)
	if err != nil {
		return nil, nil, nil, err
	}
	a, release, err := env.openApp(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, a, release, nil
}

func (env *cmdEnv) openApp(cfg *Config) (*app, func(), error) {
	if env.server != nil {
		if err := env.sameDataDir(cfg); err != nil {
			return nil, nil, err
		}
		return env.server, func() {}, nil
	}
	if sock := controlSocket(cfg); controlAnswers(sock) {
		return nil, nil, &serverRunningError{socket: sock}
	}
	// The commands' own log is silent; what data_dir needs fixing is said.
	if err := openDataDir(cfg.DataDir, slog.Default()); err != nil {
		return nil, nil, err
	}
	a, err := openApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	return a, func() { a.flushMail(); a.Close() }, nil
}
