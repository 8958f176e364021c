# NixOS module: services.sitesfs. What each option does is in nix/README.md; the settings it
# renders are docs/configuration.md.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    mkOption
    mkEnableOption
    mkIf
    mkMerge
    mkDefault
    types
    literalExpression
    ;

  cfg = config.services.sitesfs;
  toml = pkgs.formats.toml { };
  exe = "${cfg.package}/bin/sitesfs";

  credentialsDir = "/run/credentials/sitesfs.service";
  keysDir =
    if cfg.keysDir != null then
      cfg.keysDir
    else if cfg.loadCredentials != [ ] then
      credentialsDir
    else
      null;

  # The state dir is private to root unless a monitoring group may read it: 2750 hands the group
  # to files written later (docs/store.md).
  stateGroup = if cfg.monitoringGroup != null then cfg.monitoringGroup else "root";
  stateMode = if cfg.monitoringGroup != null then "2750" else "0700";

  # What the typed options say, in the shape of docs/configuration.md. `settings` is laid over it,
  # so a key set there wins.
  derivedSettings = {
    state_dir = cfg.stateDir;
    data_dir = cfg.dataDir;
    proxy = {
      # Not inside the state dir: that is 0700 (or 2750), and Caddy's user must read this file.
      file = "/var/lib/sitesfs-caddy/sites.conf";
      # A unit's PATH holds no caddy, and the proxy step runs `caddy validate`.
      caddy = "${config.services.caddy.package}/bin/caddy";
    };
    reload = {
      mode = "systemd";
      unit = cfg.reloadUnit;
    };
    reconcile.poll_interval = cfg.pollInterval;
    ssh = {
      host_key_policy = cfg.hostKeyPolicy;
      pins = cfg.hostKeyPins;
    };
  }
  // lib.optionalAttrs (keysDir != null) { keys.dir = keysDir; }
  # [store] only when it says something: the file store with no labels is sitesfs's default.
  // lib.optionalAttrs (cfg.storeBackend == "etcd" || cfg.labels != [ ]) {
    store = {
      backend = cfg.storeBackend;
      labels = cfg.labels;
    } // lib.optionalAttrs (cfg.storeBackend == "etcd") { endpoints = cfg.etcdEndpoints; };
  }
  // lib.optionalAttrs (cfg.caddyIntegration && config.services.caddy.httpsPort != null) {
    # The certificates in `status` are read from Caddy's HTTPS listener. The health check has a
    # loopback listener of its own beside each site (health.address, 127.0.0.1:2080).
    health.tls_address = "127.0.0.1:${toString config.services.caddy.httpsPort}";
  };

  settings = lib.recursiveUpdate derivedSettings cfg.settings;
  configFile = toml.generate "sitesfs.toml" settings;
  proxyFile = settings.proxy.file;

  # The read-only instance serves the same tree to root and the monitoring group only. The metrics
  # textfile is the read-write instance's: only it knows about deploy runs.
  monitorConfigFile = toml.generate "sitesfs-monitor.toml" (
    lib.recursiveUpdate (builtins.removeAttrs settings [ "metrics" ]) {
      filesystem = {
        group = cfg.monitoringGroup;
        dir_mode = "0750";
        file_mode = "0640";
      };
    }
  );
  monitorUser = "sitesfs-monitor";

  # One seed file per declared site, in the seed tool's sites.toml format that `--import` reads.
  # Its deploy_key is a `cmd:` secret's name, or a ref that names its provider (`file:NAME`), which
  # the import takes as it is.
  seedFile =
    name: site:
    toml.generate "sitesfs-seed-${name}.toml" {
      sites.${name} = {
        inherit (site) domain repo;
        # The format requires the key; empty follows the remote's default branch.
        branch = if site.branch != null then site.branch else "";
      }
      // lib.optionalAttrs (site.path != null) { inherit (site) path; }
      // lib.optionalAttrs (site.deployKeyRef != null) {
        deploy_key = if lib.hasPrefix "cmd:" site.deployKeyRef then lib.removePrefix "cmd:" site.deployKeyRef else site.deployKeyRef;
      };
    };

  # `--import` refuses a site that exists, so only sites the state dir does not hold yet are
  # imported (STATE/sites/NAME.toml, docs/store.md): what was changed through the filesystem
  # stays changed. A refused site fails the start, with the reason in the journal.
  importSeed = pkgs.writeShellScript "sitesfs-import-seed" ''
    # $1: the site's name, $2: its seed file.
    if [ -e ${lib.escapeShellArg cfg.stateDir}/sites/"$1".toml ]; then exit 0; fi
    exec ${exe} --config ${configFile} --import "$2"
  '';

  siteNameOk = name: builtins.match "[a-z0-9][a-z0-9.-]{0,62}" name != null;
  keyNameOk = name: builtins.match "[A-Za-z0-9_@+=-][A-Za-z0-9._@+=-]{0,127}" name != null;
  credentialOk = entry: builtins.match "[A-Za-z0-9_@+=-][A-Za-z0-9._@+=-]{0,127}:/.+" entry != null;
  pinOk = host: fp: lib.hasInfix ":" host && lib.hasPrefix "SHA256:" fp;

  siteOptions = {
    options = {
      repo = mkOption {
        type = types.str;
        example = "https://github.com/user/blog";
        description = "The repository: an https://, ssh:// or git:// URL, `user@host:path`, or the GitHub shorthand `user/repo`.";
      };
      domain = mkOption {
        type = types.str;
        example = "blog.example.com www.blog.example.com";
        description = "The names the site is served under, separated by spaces.";
      };
      branch = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "The branch to follow; null follows the remote's default branch.";
      };
      path = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "public";
        description = "Serve this directory of the repository instead of its root.";
      };
      deployKeyRef = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "cmd:blog";
        description = ''
          The deploy key of a private repository: `cmd:NAME` (resolved by `settings.keys.command`)
          or `file:NAME` (a file in `keysDir`, e.g. from `loadCredentials`).
        '';
      };
    };
  };
in
{
  options.services.sitesfs = {
    enable = mkEnableOption "sitesfs, the sites of this host as a filesystem, deployed to Caddy";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The sitesfs package.";
    };

    mountPoint = mkOption {
      type = types.path;
      default = "/sites";
      description = "Where the sites are mounted, read-write for root.";
    };

    stateDir = mkOption {
      type = types.path;
      default = "/var/lib/sitesfs";
      description = "The desired state (`state_dir`): one file per site, the deploy log, known hosts.";
    };

    dataDir = mkOption {
      type = types.path;
      default = "/var/lib/sites";
      description = "Per-site repositories and releases (`data_dir`); Caddy serves from here.";
    };

    settings = mkOption {
      type = toml.type;
      default = { };
      example = literalExpression ''
        {
          log_level = "debug";
          reconcile.workers = 2;
          keys.command = [ "/run/current-system/sw/bin/dota" "get" ];
        }
      '';
      description = ''
        The sitesfs config file, as TOML: every key of docs/configuration.md. Laid over what the
        other options set, so a key given here wins; `state_dir` and `data_dir` belong to
        `stateDir` and `dataDir`.
      '';
    };

    storeBackend = mkOption {
      type = types.enum [ "file" "etcd" ];
      default = "file";
      description = ''
        Where desired state lives (`store.backend`): the state dir, for one host, or etcd, shared
        by many hosts (docs/cluster.md). TLS, auth and the rest are `settings.store`.
      '';
    };

    etcdEndpoints = mkOption {
      type = types.listOf types.str;
      default = [ "http://127.0.0.1:2379" ];
      description = "The etcd members' client URLs (`store.endpoints`), with `storeBackend = \"etcd\"`.";
    };

    labels = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "eu" ];
      description = "This host's labels (`store.labels`): a site whose `hosts` lists `label:X` is placed here when X is one.";
    };

    reloadUnit = mkOption {
      type = types.str;
      default = "caddy.service";
      description = "The unit reloaded over D-Bus after the proxy config changed (`reload.unit`, systemd mode).";
    };

    pollInterval = mkOption {
      # The bounds of reconcile.poll_interval (mount/config_keys.cpp): sitesfs refuses anything else.
      type = types.ints.between 0 31536000;
      default = 60;
      description = "Seconds between checks of each followed branch (`reconcile.poll_interval`), at most a year; 0 never polls.";
    };

    keysDir = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/agenix";
      description = ''
        Where `file:NAME` deploy keys are read (`keys.dir`). Null: {file}`${credentialsDir}`
        when `loadCredentials` is not empty, otherwise no `file:` provider.
      '';
    };

    loadCredentials = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "blog:/etc/sitesfs/keys/blog" ];
      description = ''
        Deploy keys handed over by systemd (`LoadCredential=NAME:PATH`); a site uses one as
        `file:NAME`. systemd copies them to {file}`${credentialsDir}` for the life of the service.
      '';
    };

    hostKeyPins = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        "github.com:22" = "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU";
      };
      description = "SSH host keys, `\"HOST:PORT\" = \"SHA256:...\"` as `ssh-keygen -lf` prints them (`ssh.pins`).";
    };

    hostKeyPolicy = mkOption {
      type = types.enum [
        "accept-new"
        "strict"
      ];
      default = "accept-new";
      description = "`accept-new` trusts and records a host seen for the first time; `strict` needs a pin first (`ssh.host_key_policy`).";
    };

    sites = mkOption {
      type = types.attrsOf (types.submodule siteOptions);
      default = { };
      example = literalExpression ''
        { blog = { repo = "https://github.com/user/blog"; domain = "blog.example.com"; }; }
      '';
      description = ''
        Sites created at start when the state dir does not hold them yet (through
        `sitesfs --import`). After that the filesystem is their source of truth: a change here does
        not touch an existing site, and a site removed through the filesystem but still listed
        here comes back at the next start.
      '';
    };

    monitoringGroup = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "monitoring";
      description = ''
        A group that may read the sites: the state dir is opened to it (chgrp, 2750) and a
        read-only mount for it is served at `monitoringMountPoint` by `sitesfs-monitor.service`.
      '';
    };

    monitoringMountPoint = mkOption {
      type = types.path;
      default = "/run/sitesfs-monitor";
      description = "Where the read-only mount for `monitoringGroup` is served.";
    };

    caddyIntegration = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Enable services.caddy, import the generated proxy config into its Caddyfile, and read the
        certificates it serves from its HTTPS port.
      '';
    };

    watchdogSec = mkOption {
      type = types.nullOr types.ints.positive;
      default = null;
      example = 30;
      description = "systemd restarts sitesfs when its mount has not answered for this many seconds (`WatchdogSec=`).";
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions = [
        {
          assertion = lib.all siteNameOk (lib.attrNames cfg.sites);
          message = "services.sitesfs.sites: a site name is 1-63 of a-z, 0-9, '.', '-', starting with a letter or digit.";
        }
        {
          assertion = lib.all (
            site: site.deployKeyRef == null || lib.hasPrefix "cmd:" site.deployKeyRef || lib.hasPrefix "file:" site.deployKeyRef
          ) (lib.attrValues cfg.sites);
          message = "services.sitesfs.sites.<name>.deployKeyRef: write cmd:NAME or file:NAME.";
        }
        {
          assertion = lib.all (
            site:
            site.deployKeyRef == null
            || !(lib.hasPrefix "cmd:" site.deployKeyRef || lib.hasPrefix "file:" site.deployKeyRef)
            || keyNameOk (lib.removePrefix "file:" (lib.removePrefix "cmd:" site.deployKeyRef))
          ) (lib.attrValues cfg.sites);
          message = "services.sitesfs.sites.<name>.deployKeyRef: the name after cmd: or file: is 1-128 of A-Z, a-z, 0-9, '.', '_', '@', '+', '=', '-', not starting with '.'.";
        }
        {
          assertion = lib.all credentialOk cfg.loadCredentials;
          message = "services.sitesfs.loadCredentials: each entry is NAME:/absolute/path, NAME usable as a file: key name.";
        }
        {
          assertion = lib.all (host: pinOk host cfg.hostKeyPins.${host}) (lib.attrNames cfg.hostKeyPins);
          message = "services.sitesfs.hostKeyPins: write \"HOST:PORT\" = \"SHA256:...\".";
        }
        {
          assertion = !(cfg.settings ? state_dir || cfg.settings ? data_dir);
          message = "services.sitesfs.settings: set stateDir and dataDir instead of state_dir and data_dir; the unit's directories follow them.";
        }
        {
          assertion = cfg.monitoringGroup == null || cfg.monitoringMountPoint != cfg.mountPoint;
          message = "services.sitesfs.monitoringMountPoint must differ from mountPoint.";
        }
        {
          assertion =
            !(cfg.caddyIntegration && cfg.reloadUnit == "caddy.service" && settings.reload.mode == "systemd")
            || config.services.caddy.enableReload;
          message = "services.sitesfs reloads caddy.service, which needs services.caddy.enableReload.";
        }
      ];

      # sitesfs for `--import` and `--help` by hand; fusermount3 to clear a stale mount.
      environment.systemPackages = [
        cfg.package
        pkgs.fuse3
      ];
      # The same settings for sitesfs run by hand (`sitesfs --config /etc/sitesfs/sitesfs.toml`).
      environment.etc."sitesfs/sitesfs.toml".source = configFile;

      systemd.tmpfiles.rules = [
        "d ${cfg.stateDir} ${stateMode} root ${stateGroup} - -"
        "d ${cfg.stateDir}/sites ${stateMode} root ${stateGroup} - -"
        "d ${cfg.dataDir} 0755 root root - -"
        "d ${dirOf proxyFile} 0755 root root - -"
        # Caddy refuses to start on an `import` of a missing file; sitesfs fills it on its first run.
        "f ${proxyFile} 0644 root root - -"
      ]
      ++ lib.optional (cfg.monitoringGroup != null) "Z ${cfg.stateDir}/sites - - ${cfg.monitoringGroup} - -";

      systemd.services.sitesfs = {
        description = "sitesfs: the sites at ${cfg.mountPoint}, deployed to Caddy";
        wantedBy = [ "multi-user.target" ];
        # Wants, not Requires, as systemd advises for network-online.target. The reload unit must
        # be up before the first deploy reloads it.
        wants = [
          "network-online.target"
          cfg.reloadUnit
        ];
        after = [
          "network-online.target"
          cfg.reloadUnit
        ];
        # fusermount3 clears the stale mount a crash leaves behind.
        path = [ pkgs.fuse3 ];
        environment = {
          # libgit2 needs a HOME; nothing is read from it.
          HOME = cfg.stateDir;
          # `caddy validate` writes to its config and data dirs: scratch space, not state.
          XDG_CONFIG_HOME = "/run/sitesfs/config";
          XDG_DATA_HOME = "/run/sitesfs/data";
        };
        serviceConfig = {
          Type = "notify";
          # "-": on a stale mount mkdir fails, and sitesfs clears the mount itself; any other
          # failure shows as sitesfs' own "mountpoint ...: No such file or directory".
          ExecStartPre = [
            "-${pkgs.coreutils}/bin/mkdir -p ${cfg.mountPoint}"
          ]
          ++ lib.mapAttrsToList (name: site: "${importSeed} ${name} ${seedFile name site}") cfg.sites;
          # SIGTERM unmounts and exits 0.
          ExecStart = "${exe} -f --config ${configFile} ${cfg.mountPoint}";
          Restart = "on-failure";
          RestartSec = 2;
          # Exit status 2 is a usage or config error: starting again cannot fix it.
          RestartPreventExitStatus = 2;
          RuntimeDirectory = "sitesfs";
          RuntimeDirectoryMode = "0700";
          LoadCredential = cfg.loadCredentials;
          WatchdogSec = mkIf (cfg.watchdogSec != null) cfg.watchdogSec;

          # No ProtectSystem=, ProtectHome=, PrivateTmp=, ReadWritePaths=, PrivateDevices=,
          # ProtectKernel*= or ProtectControlGroups=: each gives the unit its own mount namespace,
          # from which mounts do not propagate to the host (systemd.exec(5)), so /sites would only
          # exist inside the service. Hardening that needs no namespace:
          NoNewPrivileges = true;
          # CAP_SYS_ADMIN: mount(2) and umount2(2) of the FUSE filesystem. CAP_DAC_READ_SEARCH:
          # read deploy keys owned by another account (a sops-nix secret with its own owner).
          # Builds do not run on NixOS yet (docs/builds.md), so neither they nor what the Debian
          # unit allows for them (chown, setuid, kill; namespaces and writable code for the
          # filters below) are here: sitesfs then never chowns, and only chmods files it created.
          CapabilityBoundingSet = [
            "CAP_SYS_ADMIN"
            "CAP_DAC_READ_SEARCH"
          ];
          DevicePolicy = "closed";
          DeviceAllow = [ "/dev/fuse rw" ];
          # AF_UNIX: D-Bus (the reload), the notify socket, Caddy's admin socket. AF_INET/6: git
          # remotes and the health check.
          RestrictAddressFamilies = [
            "AF_UNIX"
            "AF_INET"
            "AF_INET6"
          ];
          RestrictNamespaces = true;
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          SystemCallArchitectures = "native";
        };
      };
    }

    (mkIf cfg.caddyIntegration {
      services.caddy = {
        enable = mkDefault true;
        extraConfig = ''
          import ${proxyFile}
        '';
      };
    })

    (mkIf (cfg.monitoringGroup != null) {
      users.groups.${cfg.monitoringGroup} = { };
      users.users.${monitorUser} = {
        isSystemUser = true;
        group = cfg.monitoringGroup;
        description = "sitesfs read-only mount for ${cfg.monitoringGroup}";
      };
      # allow_other from a non-root mount.
      programs.fuse.userAllowOther = true;

      systemd.services.sitesfs-monitor = {
        description = "sitesfs: read-only view of the sites for ${cfg.monitoringGroup} at ${cfg.monitoringMountPoint}";
        wantedBy = [ "multi-user.target" ];
        after = [ "sitesfs.service" ];
        # /run/wrappers/bin: the setuid fusermount3, for the stale-mount cleanup (libfuse finds it
        # there on its own).
        path = [ "/run/wrappers" ];
        # Unprivileged on purpose: it only reads the state dir through the group. So no
        # NoNewPrivileges= and no seccomp-based options (which imply it for a non-root user):
        # the mount goes through the setuid fusermount3. No namespace options, as above.
        serviceConfig = {
          Type = "notify";
          User = monitorUser;
          Group = cfg.monitoringGroup;
          # fusermount3 wants the mountpoint writable by the user who mounts. "+": as root; "-": a
          # stale mount makes install fail, and sitesfs clears it itself.
          ExecStartPre = "-+${pkgs.coreutils}/bin/install -d -o ${monitorUser} -g ${cfg.monitoringGroup} -m 0750 ${cfg.monitoringMountPoint}";
          ExecStart = "${exe} -f -o ro,allow_other --config ${monitorConfigFile} ${cfg.monitoringMountPoint}";
          Restart = "on-failure";
          RestartSec = 2;
          RestartPreventExitStatus = 2;
        };
      };
    })
  ]);
}
