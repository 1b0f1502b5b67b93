# bash completion for nerdpy. Generated from the click tree by
# `python -m nerdpy.completion_gen`: do not edit by hand.

# Install: copy to /usr/share/bash-completion/completions/nerdpy, or
#   source <(nerdpy completion bash)

declare -gA _nerdpy_subcmds=(
    ['nerdpy']='attach commit completion compose container cp create diff doctor events exec export history image images import info inspect kill load login logout logs network pause port ps pull push rename restart rm rmi run save start stats stop system tag top unpause update version volume wait'
    ['nerdpy compose']='attach config cp create down events exec images kill logs ls pause port ps pull restart rm run scale start stats stop top unpause up version wait watch'
    ['nerdpy container']='attach commit cp create diff exec export inspect kill list logs ls pause port prune ps remove rename restart rm run start stats stop top unpause update wait'
    ['nerdpy image']='history import inspect list load ls prune pull push remove rm save tag'
    ['nerdpy network']='connect create disconnect inspect list ls prune remove rm'
    ['nerdpy system']='check df events info prune restart-policies service'
    ['nerdpy volume']='create inspect list ls prune remove rm'
)
declare -gA _nerdpy_flags=(
    ['nerdpy']='-v --version --debug -h --help'
    ['nerdpy attach']='--no-stdin --sig-proxy --no-sig-proxy -h --help'
    ['nerdpy commit']='-h --help'
    ['nerdpy completion']='-h --help'
    ['nerdpy compose']='--compatibility -h --help'
    ['nerdpy compose attach']='--no-stdin --sig-proxy --no-sig-proxy -h --help'
    ['nerdpy compose config']='--services --volumes --profiles --images --variables --no-interpolate -q --quiet -h --help'
    ['nerdpy compose cp']='--all -a --archive -L --follow-link -h --help'
    ['nerdpy compose create']='--force-recreate --no-recreate --remove-orphans --quiet-pull -h --help'
    ['nerdpy compose down']='-v --volumes --remove-orphans -h --help'
    ['nerdpy compose events']='--json -h --help'
    ['nerdpy compose exec']='-d --detach -T --no-TTY --privileged -h --help'
    ['nerdpy compose images']='-q --quiet -h --help'
    ['nerdpy compose kill']='--remove-orphans -h --help'
    ['nerdpy compose logs']='-f --follow -t --timestamps --no-color --no-log-prefix -h --help'
    ['nerdpy compose ls']='-a --all -q --quiet -h --help'
    ['nerdpy compose pause']='-h --help'
    ['nerdpy compose port']='-h --help'
    ['nerdpy compose ps']='-a --all -q --quiet --services -h --help'
    ['nerdpy compose pull']='-q --quiet --ignore-pull-failures --include-deps -h --help'
    ['nerdpy compose restart']='--no-deps -h --help'
    ['nerdpy compose rm']='-f --force -s --stop -v --volumes -h --help'
    ['nerdpy compose run']='-d --detach --rm --no-deps --service-ports --use-aliases -T --no-TTY -i --interactive --no-interactive --quiet-pull -h --help'
    ['nerdpy compose scale']='--no-deps -h --help'
    ['nerdpy compose start']='--wait -h --help'
    ['nerdpy compose stats']='-a --all --no-stream --no-trunc -h --help'
    ['nerdpy compose stop']='-h --help'
    ['nerdpy compose top']='-h --help'
    ['nerdpy compose unpause']='-h --help'
    ['nerdpy compose up']='-d --detach --no-deps --force-recreate --no-recreate --remove-orphans --abort-on-container-exit --abort-on-container-failure --wait --quiet-pull --no-start --no-color --no-log-prefix --timestamps --attach-dependencies -V --renew-anon-volumes -w --watch -h --help'
    ['nerdpy compose version']='--short -h --help'
    ['nerdpy compose wait']='--down-project -h --help'
    ['nerdpy compose watch']='--no-up -h --help'
    ['nerdpy container']='-h --help'
    ['nerdpy container attach']='--no-stdin --sig-proxy --no-sig-proxy -h --help'
    ['nerdpy container commit']='-h --help'
    ['nerdpy container cp']='-a --archive -L --follow-link -q --quiet -h --help'
    ['nerdpy container create']='-i --interactive -t --tty --rm -q --quiet --read-only --init --privileged --no-healthcheck -P --publish-all --oom-kill-disable --help'
    ['nerdpy container diff']='-h --help'
    ['nerdpy container exec']='-i --interactive -t --tty -d --detach --privileged -h --help'
    ['nerdpy container export']='-h --help'
    ['nerdpy container inspect']='-s --size -h --help'
    ['nerdpy container kill']='-h --help'
    ['nerdpy container list']='-a --all -q --quiet -l --latest -s --size --no-trunc -h --help'
    ['nerdpy container logs']='-f --follow -t --timestamps -h --help'
    ['nerdpy container ls']='-a --all -q --quiet -l --latest -s --size --no-trunc -h --help'
    ['nerdpy container pause']='-h --help'
    ['nerdpy container port']='-h --help'
    ['nerdpy container prune']='-f --force -h --help'
    ['nerdpy container ps']='-a --all -q --quiet -l --latest -s --size --no-trunc -h --help'
    ['nerdpy container remove']='-f --force -v --volumes -h --help'
    ['nerdpy container rename']='-h --help'
    ['nerdpy container restart']='-h --help'
    ['nerdpy container rm']='-f --force -v --volumes -h --help'
    ['nerdpy container run']='-d --detach --sig-proxy --no-sig-proxy -i --interactive -t --tty --rm -q --quiet --read-only --init --privileged --no-healthcheck -P --publish-all --oom-kill-disable --help'
    ['nerdpy container start']='-a --attach -i --interactive -h --help'
    ['nerdpy container stats']='-a --all --no-stream --no-trunc -h --help'
    ['nerdpy container stop']='-h --help'
    ['nerdpy container top']='-h --help'
    ['nerdpy container unpause']='-h --help'
    ['nerdpy container update']='-h --help'
    ['nerdpy container wait']='-h --help'
    ['nerdpy cp']='-a --archive -L --follow-link -q --quiet -h --help'
    ['nerdpy create']='-i --interactive -t --tty --rm -q --quiet --read-only --init --privileged --no-healthcheck -P --publish-all --oom-kill-disable --help'
    ['nerdpy diff']='-h --help'
    ['nerdpy doctor']='-h --help'
    ['nerdpy events']='-h --help'
    ['nerdpy exec']='-i --interactive -t --tty -d --detach --privileged -h --help'
    ['nerdpy export']='-h --help'
    ['nerdpy history']='-H --human --no-human --no-trunc -q --quiet -h --help'
    ['nerdpy image']='-h --help'
    ['nerdpy image history']='-H --human --no-human --no-trunc -q --quiet -h --help'
    ['nerdpy image import']='-h --help'
    ['nerdpy image inspect']='-h --help'
    ['nerdpy image list']='-q --quiet -a --all --digests --no-trunc -h --help'
    ['nerdpy image load']='-q --quiet -h --help'
    ['nerdpy image ls']='-q --quiet -a --all --digests --no-trunc -h --help'
    ['nerdpy image prune']='-a --all -f --force -h --help'
    ['nerdpy image pull']='-q --quiet -a --all-platforms -h --help'
    ['nerdpy image push']='-a --all-tags -q --quiet -h --help'
    ['nerdpy image remove']='-f --force -h --help'
    ['nerdpy image rm']='-f --force -h --help'
    ['nerdpy image save']='-h --help'
    ['nerdpy image tag']='-h --help'
    ['nerdpy images']='-q --quiet -a --all --digests --no-trunc -h --help'
    ['nerdpy import']='-h --help'
    ['nerdpy info']='-h --help'
    ['nerdpy inspect']='-s --size -h --help'
    ['nerdpy kill']='-h --help'
    ['nerdpy load']='-q --quiet -h --help'
    ['nerdpy login']='--password-stdin -h --help'
    ['nerdpy logout']='-h --help'
    ['nerdpy logs']='-f --follow -t --timestamps -h --help'
    ['nerdpy network']='-h --help'
    ['nerdpy network connect']='-h --help'
    ['nerdpy network create']='--internal --ipv6 -h --help'
    ['nerdpy network disconnect']='-f --force -h --help'
    ['nerdpy network inspect']='-h --help'
    ['nerdpy network list']='-q --quiet --no-trunc -h --help'
    ['nerdpy network ls']='-q --quiet --no-trunc -h --help'
    ['nerdpy network prune']='-f --force -h --help'
    ['nerdpy network remove']='-f --force -h --help'
    ['nerdpy network rm']='-f --force -h --help'
    ['nerdpy pause']='-h --help'
    ['nerdpy port']='-h --help'
    ['nerdpy ps']='-a --all -q --quiet -l --latest -s --size --no-trunc -h --help'
    ['nerdpy pull']='-q --quiet -a --all-platforms -h --help'
    ['nerdpy push']='-a --all-tags -q --quiet -h --help'
    ['nerdpy rename']='-h --help'
    ['nerdpy restart']='-h --help'
    ['nerdpy rm']='-f --force -v --volumes -h --help'
    ['nerdpy rmi']='-f --force -h --help'
    ['nerdpy run']='-d --detach --sig-proxy --no-sig-proxy -i --interactive -t --tty --rm -q --quiet --read-only --init --privileged --no-healthcheck -P --publish-all --oom-kill-disable --help'
    ['nerdpy save']='-h --help'
    ['nerdpy start']='-a --attach -i --interactive -h --help'
    ['nerdpy stats']='-a --all --no-stream --no-trunc -h --help'
    ['nerdpy stop']='-h --help'
    ['nerdpy system']='-h --help'
    ['nerdpy system check']='--repair -q --quiet -h --help'
    ['nerdpy system df']='-v --verbose -h --help'
    ['nerdpy system events']='-h --help'
    ['nerdpy system info']='-h --help'
    ['nerdpy system prune']='-a --all --volumes -f --force -h --help'
    ['nerdpy system restart-policies']='-h --help'
    ['nerdpy system service']='-h --help'
    ['nerdpy tag']='-h --help'
    ['nerdpy top']='-h --help'
    ['nerdpy unpause']='-h --help'
    ['nerdpy update']='-h --help'
    ['nerdpy version']='-h --help'
    ['nerdpy volume']='-h --help'
    ['nerdpy volume create']='-h --help'
    ['nerdpy volume inspect']='-h --help'
    ['nerdpy volume list']='-q --quiet -h --help'
    ['nerdpy volume ls']='-q --quiet -h --help'
    ['nerdpy volume prune']='-a --all -f --force -h --help'
    ['nerdpy volume remove']='-f --force -h --help'
    ['nerdpy volume rm']='-f --force -h --help'
    ['nerdpy wait']='-h --help'
)
declare -gA _nerdpy_valopts=(
    ['nerdpy']='--data-root -n --namespace --insecure-registry --hosts-dir'
    ['nerdpy attach']='--detach-keys'
    ['nerdpy commit']='-a --author -c --change -m --message -p --pause'
    ['nerdpy compose']='-f --file -p --project-name --project-directory --env-file --profile --progress'
    ['nerdpy compose attach']='--index --detach-keys'
    ['nerdpy compose config']='--format --hash -o --output'
    ['nerdpy compose cp']='--index'
    ['nerdpy compose create']='--scale --pull'
    ['nerdpy compose down']='--rmi -t --timeout'
    ['nerdpy compose exec']='-e --env -w --workdir -u --user --index'
    ['nerdpy compose images']='--format'
    ['nerdpy compose kill']='-s --signal'
    ['nerdpy compose logs']='-n --tail --since --until --index'
    ['nerdpy compose ls']='--format --filter'
    ['nerdpy compose port']='--protocol --index'
    ['nerdpy compose ps']='--status --filter --format'
    ['nerdpy compose restart']='-t --timeout'
    ['nerdpy compose run']='--name -e --env -l --label -w --workdir -u --user -v --volume --entrypoint --pull'
    ['nerdpy compose start']='--wait-timeout'
    ['nerdpy compose stats']='--format'
    ['nerdpy compose stop']='-t --timeout'
    ['nerdpy compose up']='--scale --attach --no-attach --exit-code-from --wait-timeout --pull -t --timeout'
    ['nerdpy compose version']='-f --format'
    ['nerdpy container attach']='--detach-keys'
    ['nerdpy container commit']='-a --author -c --change -m --message -p --pause'
    ['nerdpy container create']='--name --restart --pull --cidfile -e --env --env-file -w --workdir --entrypoint -u --user --group-add -h --hostname --domainname -v --volume --mount --tmpfs -l --label --label-file -m --memory --memory-swap --memory-reservation --cpus -c --cpu-shares --pids-limit --ulimit --stop-signal --stop-timeout --cap-add --cap-drop --security-opt --device --shm-size --sysctl --oom-score-adj --health-cmd --health-interval --health-timeout --health-retries --health-start-period --platform --log-opt --log-driver --network --net --network-alias --net-alias --ip --mac-address -p --publish --dns --pid --expose --dns-search --dns-option --dns-opt --add-host --ipc --uts --cgroupns --cpuset-cpus --cpuset-mems --cpu-period --cpu-quota --memory-swappiness --blkio-weight --device-read-bps --device-write-bps --device-read-iops --device-write-iops --volumes-from --runtime --gpus'
    ['nerdpy container exec']='-e --env --env-file -w --workdir -u --user'
    ['nerdpy container export']='-o --output'
    ['nerdpy container inspect']='-f --format'
    ['nerdpy container kill']='-s --signal'
    ['nerdpy container list']='-n --last -f --filter --format'
    ['nerdpy container logs']='-n --tail --since --until'
    ['nerdpy container ls']='-n --last -f --filter --format'
    ['nerdpy container prune']='--filter'
    ['nerdpy container ps']='-n --last -f --filter --format'
    ['nerdpy container restart']='-t --time'
    ['nerdpy container run']='--detach-keys -a --attach --name --restart --pull --cidfile -e --env --env-file -w --workdir --entrypoint -u --user --group-add -h --hostname --domainname -v --volume --mount --tmpfs -l --label --label-file -m --memory --memory-swap --memory-reservation --cpus -c --cpu-shares --pids-limit --ulimit --stop-signal --stop-timeout --cap-add --cap-drop --security-opt --device --shm-size --sysctl --oom-score-adj --health-cmd --health-interval --health-timeout --health-retries --health-start-period --platform --log-opt --log-driver --network --net --network-alias --net-alias --ip --mac-address -p --publish --dns --pid --expose --dns-search --dns-option --dns-opt --add-host --ipc --uts --cgroupns --cpuset-cpus --cpuset-mems --cpu-period --cpu-quota --memory-swappiness --blkio-weight --device-read-bps --device-write-bps --device-read-iops --device-write-iops --volumes-from --runtime --gpus'
    ['nerdpy container start']='--detach-keys'
    ['nerdpy container stats']='--format'
    ['nerdpy container stop']='-t --time -s --signal'
    ['nerdpy container update']='--blkio-weight --cpu-period --cpu-quota -c --cpu-shares --cpus --cpuset-cpus --cpuset-mems -m --memory --memory-reservation --memory-swap --pids-limit --restart'
    ['nerdpy create']='--name --restart --pull --cidfile -e --env --env-file -w --workdir --entrypoint -u --user --group-add -h --hostname --domainname -v --volume --mount --tmpfs -l --label --label-file -m --memory --memory-swap --memory-reservation --cpus -c --cpu-shares --pids-limit --ulimit --stop-signal --stop-timeout --cap-add --cap-drop --security-opt --device --shm-size --sysctl --oom-score-adj --health-cmd --health-interval --health-timeout --health-retries --health-start-period --platform --log-opt --log-driver --network --net --network-alias --net-alias --ip --mac-address -p --publish --dns --pid --expose --dns-search --dns-option --dns-opt --add-host --ipc --uts --cgroupns --cpuset-cpus --cpuset-mems --cpu-period --cpu-quota --memory-swappiness --blkio-weight --device-read-bps --device-write-bps --device-read-iops --device-write-iops --volumes-from --runtime --gpus'
    ['nerdpy doctor']='--format'
    ['nerdpy events']='--since --until -f --filter --format'
    ['nerdpy exec']='-e --env --env-file -w --workdir -u --user'
    ['nerdpy export']='-o --output'
    ['nerdpy history']='--format'
    ['nerdpy image history']='--format'
    ['nerdpy image import']='-c --change -m --message --platform'
    ['nerdpy image inspect']='-f --format'
    ['nerdpy image list']='-f --filter --format'
    ['nerdpy image load']='-i --input'
    ['nerdpy image ls']='-f --filter --format'
    ['nerdpy image prune']='--filter'
    ['nerdpy image pull']='--platform --progress'
    ['nerdpy image push']='--progress'
    ['nerdpy image save']='-o --output --format'
    ['nerdpy images']='-f --filter --format'
    ['nerdpy import']='-c --change -m --message --platform'
    ['nerdpy info']='-f --format'
    ['nerdpy inspect']='-f --format --type'
    ['nerdpy kill']='-s --signal'
    ['nerdpy load']='-i --input'
    ['nerdpy login']='-u --username -p --password'
    ['nerdpy logs']='-n --tail --since --until'
    ['nerdpy network connect']='--alias --ip'
    ['nerdpy network create']='-d --driver --subnet --gateway --ip-range -o --opt --label'
    ['nerdpy network inspect']='-f --format'
    ['nerdpy network list']='-f --filter --format'
    ['nerdpy network ls']='-f --filter --format'
    ['nerdpy network prune']='--filter'
    ['nerdpy ps']='-n --last -f --filter --format'
    ['nerdpy pull']='--platform --progress'
    ['nerdpy push']='--progress'
    ['nerdpy restart']='-t --time'
    ['nerdpy run']='--detach-keys -a --attach --name --restart --pull --cidfile -e --env --env-file -w --workdir --entrypoint -u --user --group-add -h --hostname --domainname -v --volume --mount --tmpfs -l --label --label-file -m --memory --memory-swap --memory-reservation --cpus -c --cpu-shares --pids-limit --ulimit --stop-signal --stop-timeout --cap-add --cap-drop --security-opt --device --shm-size --sysctl --oom-score-adj --health-cmd --health-interval --health-timeout --health-retries --health-start-period --platform --log-opt --log-driver --network --net --network-alias --net-alias --ip --mac-address -p --publish --dns --pid --expose --dns-search --dns-option --dns-opt --add-host --ipc --uts --cgroupns --cpuset-cpus --cpuset-mems --cpu-period --cpu-quota --memory-swappiness --blkio-weight --device-read-bps --device-write-bps --device-read-iops --device-write-iops --volumes-from --runtime --gpus'
    ['nerdpy save']='-o --output --format'
    ['nerdpy start']='--detach-keys'
    ['nerdpy stats']='--format'
    ['nerdpy stop']='-t --time -s --signal'
    ['nerdpy system df']='--format'
    ['nerdpy system events']='--since --until -f --filter --format'
    ['nerdpy system info']='-f --format'
    ['nerdpy system prune']='--filter'
    ['nerdpy system service']='-t --time --group'
    ['nerdpy update']='--blkio-weight --cpu-period --cpu-quota -c --cpu-shares --cpus --cpuset-cpus --cpuset-mems -m --memory --memory-reservation --memory-swap --pids-limit --restart'
    ['nerdpy version']='-f --format'
    ['nerdpy volume create']='-d --driver -l --label -o --opt'
    ['nerdpy volume inspect']='-f --format'
    ['nerdpy volume list']='-f --filter --format'
    ['nerdpy volume ls']='-f --filter --format'
    ['nerdpy volume prune']='--filter'
)
declare -gA _nerdpy_optkind=(
    ['nerdpy|--data-root']='dirs'
    ['nerdpy|--hosts-dir']='dirs'
    ['nerdpy compose|-f']='files'
    ['nerdpy compose|--file']='files'
    ['nerdpy compose|--project-directory']='dirs'
    ['nerdpy compose|--env-file']='files'
    ['nerdpy compose|--progress']='choice=auto,tty,plain,quiet'
    ['nerdpy compose config|--format']='choice=yaml,json'
    ['nerdpy compose config|-o']='files'
    ['nerdpy compose config|--output']='files'
    ['nerdpy compose create|--pull']='choice=always,missing,never'
    ['nerdpy compose down|--rmi']='choice=local,all'
    ['nerdpy compose kill|-s']='signals'
    ['nerdpy compose kill|--signal']='signals'
    ['nerdpy compose port|--protocol']='choice=tcp,udp,sctp'
    ['nerdpy compose ps|--status']='choice=paused,restarting,removing,running,dead,created,exited'
    ['nerdpy compose run|-v']='volumes+files'
    ['nerdpy compose run|--volume']='volumes+files'
    ['nerdpy compose run|--pull']='choice=always,missing,never'
    ['nerdpy compose up|--pull']='choice=always,missing,never'
    ['nerdpy compose version|-f']='choice=pretty,json'
    ['nerdpy compose version|--format']='choice=pretty,json'
    ['nerdpy container create|--restart']='choice=no,always,unless-stopped,on-failure'
    ['nerdpy container create|--pull']='choice=missing,always,never'
    ['nerdpy container create|--cidfile']='files'
    ['nerdpy container create|--env-file']='files'
    ['nerdpy container create|-v']='volumes+files'
    ['nerdpy container create|--volume']='volumes+files'
    ['nerdpy container create|--label-file']='files'
    ['nerdpy container create|--stop-signal']='signals'
    ['nerdpy container create|--log-driver']='choice=json-file,none'
    ['nerdpy container create|--network']='networks'
    ['nerdpy container create|--net']='networks'
    ['nerdpy container create|--volumes-from']='containers-all'
    ['nerdpy container exec|--env-file']='files'
    ['nerdpy container export|-o']='files'
    ['nerdpy container export|--output']='files'
    ['nerdpy container kill|-s']='signals'
    ['nerdpy container kill|--signal']='signals'
    ['nerdpy container run|--restart']='choice=no,always,unless-stopped,on-failure'
    ['nerdpy container run|--pull']='choice=missing,always,never'
    ['nerdpy container run|--cidfile']='files'
    ['nerdpy container run|--env-file']='files'
    ['nerdpy container run|-v']='volumes+files'
    ['nerdpy container run|--volume']='volumes+files'
    ['nerdpy container run|--label-file']='files'
    ['nerdpy container run|--stop-signal']='signals'
    ['nerdpy container run|--log-driver']='choice=json-file,none'
    ['nerdpy container run|--network']='networks'
    ['nerdpy container run|--net']='networks'
    ['nerdpy container run|--volumes-from']='containers-all'
    ['nerdpy container stop|-s']='signals'
    ['nerdpy container stop|--signal']='signals'
    ['nerdpy container update|--restart']='choice=no,always,unless-stopped,on-failure'
    ['nerdpy create|--restart']='choice=no,always,unless-stopped,on-failure'
    ['nerdpy create|--pull']='choice=missing,always,never'
    ['nerdpy create|--cidfile']='files'
    ['nerdpy create|--env-file']='files'
    ['nerdpy create|-v']='volumes+files'
    ['nerdpy create|--volume']='volumes+files'
    ['nerdpy create|--label-file']='files'
    ['nerdpy create|--stop-signal']='signals'
    ['nerdpy create|--log-driver']='choice=json-file,none'
    ['nerdpy create|--network']='networks'
    ['nerdpy create|--net']='networks'
    ['nerdpy create|--volumes-from']='containers-all'
    ['nerdpy exec|--env-file']='files'
    ['nerdpy export|-o']='files'
    ['nerdpy export|--output']='files'
    ['nerdpy image load|-i']='files'
    ['nerdpy image load|--input']='files'
    ['nerdpy image pull|--progress']='choice=auto,plain,tty,quiet'
    ['nerdpy image push|--progress']='choice=auto,plain,tty,quiet'
    ['nerdpy image save|-o']='files'
    ['nerdpy image save|--output']='files'
    ['nerdpy image save|--format']='choice=docker-archive,oci-archive'
    ['nerdpy inspect|--type']='choice=container,image,volume'
    ['nerdpy kill|-s']='signals'
    ['nerdpy kill|--signal']='signals'
    ['nerdpy load|-i']='files'
    ['nerdpy load|--input']='files'
    ['nerdpy pull|--progress']='choice=auto,plain,tty,quiet'
    ['nerdpy push|--progress']='choice=auto,plain,tty,quiet'
    ['nerdpy run|--restart']='choice=no,always,unless-stopped,on-failure'
    ['nerdpy run|--pull']='choice=missing,always,never'
    ['nerdpy run|--cidfile']='files'
    ['nerdpy run|--env-file']='files'
    ['nerdpy run|-v']='volumes+files'
    ['nerdpy run|--volume']='volumes+files'
    ['nerdpy run|--label-file']='files'
    ['nerdpy run|--stop-signal']='signals'
    ['nerdpy run|--log-driver']='choice=json-file,none'
    ['nerdpy run|--network']='networks'
    ['nerdpy run|--net']='networks'
    ['nerdpy run|--volumes-from']='containers-all'
    ['nerdpy save|-o']='files'
    ['nerdpy save|--output']='files'
    ['nerdpy save|--format']='choice=docker-archive,oci-archive'
    ['nerdpy stop|-s']='signals'
    ['nerdpy stop|--signal']='signals'
    ['nerdpy update|--restart']='choice=no,always,unless-stopped,on-failure'
)
declare -gA _nerdpy_args=(
    ['nerdpy attach']='containers'
    ['nerdpy commit']='containers-all images'
    ['nerdpy completion']='choice=bash,zsh,fish'
    ['nerdpy compose attach']='services'
    ['nerdpy compose cp']='cp cp'
    ['nerdpy compose create']='services...'
    ['nerdpy compose down']='services...'
    ['nerdpy compose events']='services...'
    ['nerdpy compose exec']='services stop...'
    ['nerdpy compose images']='services...'
    ['nerdpy compose kill']='services...'
    ['nerdpy compose logs']='services...'
    ['nerdpy compose pause']='services...'
    ['nerdpy compose port']='services none'
    ['nerdpy compose ps']='services...'
    ['nerdpy compose pull']='services...'
    ['nerdpy compose restart']='services...'
    ['nerdpy compose rm']='services...'
    ['nerdpy compose run']='services stop...'
    ['nerdpy compose scale']='none...'
    ['nerdpy compose start']='services...'
    ['nerdpy compose stats']='services'
    ['nerdpy compose stop']='services...'
    ['nerdpy compose top']='services...'
    ['nerdpy compose unpause']='services...'
    ['nerdpy compose up']='services...'
    ['nerdpy compose wait']='services...'
    ['nerdpy compose watch']='services...'
    ['nerdpy container attach']='containers'
    ['nerdpy container commit']='containers-all images'
    ['nerdpy container cp']='cp cp'
    ['nerdpy container create']='images stop...'
    ['nerdpy container diff']='containers-all'
    ['nerdpy container exec']='containers stop...'
    ['nerdpy container export']='containers-all'
    ['nerdpy container inspect']='containers-all...'
    ['nerdpy container kill']='containers...'
    ['nerdpy container logs']='containers-all'
    ['nerdpy container pause']='containers...'
    ['nerdpy container port']='containers-all none'
    ['nerdpy container remove']='containers-all...'
    ['nerdpy container rename']='containers-all none'
    ['nerdpy container restart']='containers-all...'
    ['nerdpy container rm']='containers-all...'
    ['nerdpy container run']='images stop...'
    ['nerdpy container start']='containers-stopped...'
    ['nerdpy container stats']='containers-all...'
    ['nerdpy container stop']='containers...'
    ['nerdpy container top']='containers stop...'
    ['nerdpy container unpause']='containers-paused...'
    ['nerdpy container update']='containers-all...'
    ['nerdpy container wait']='containers-all...'
    ['nerdpy cp']='cp cp'
    ['nerdpy create']='images stop...'
    ['nerdpy diff']='containers-all'
    ['nerdpy exec']='containers stop...'
    ['nerdpy export']='containers-all'
    ['nerdpy history']='images'
    ['nerdpy image history']='images'
    ['nerdpy image import']='files none'
    ['nerdpy image inspect']='images...'
    ['nerdpy image list']='images'
    ['nerdpy image ls']='images'
    ['nerdpy image pull']='images'
    ['nerdpy image push']='images'
    ['nerdpy image remove']='images...'
    ['nerdpy image rm']='images...'
    ['nerdpy image save']='images...'
    ['nerdpy image tag']='images images'
    ['nerdpy images']='images'
    ['nerdpy import']='files none'
    ['nerdpy inspect']='containers-all+images...'
    ['nerdpy kill']='containers...'
    ['nerdpy login']='none'
    ['nerdpy logout']='none'
    ['nerdpy logs']='containers-all'
    ['nerdpy network connect']='networks containers-all'
    ['nerdpy network create']='none'
    ['nerdpy network disconnect']='networks containers-all'
    ['nerdpy network inspect']='networks...'
    ['nerdpy network remove']='networks...'
    ['nerdpy network rm']='networks...'
    ['nerdpy pause']='containers...'
    ['nerdpy port']='containers-all none'
    ['nerdpy pull']='images'
    ['nerdpy push']='images'
    ['nerdpy rename']='containers-all none'
    ['nerdpy restart']='containers-all...'
    ['nerdpy rm']='containers-all...'
    ['nerdpy rmi']='images...'
    ['nerdpy run']='images stop...'
    ['nerdpy save']='images...'
    ['nerdpy start']='containers-stopped...'
    ['nerdpy stats']='containers-all...'
    ['nerdpy stop']='containers...'
    ['nerdpy system service']='none'
    ['nerdpy tag']='images images'
    ['nerdpy top']='containers stop...'
    ['nerdpy unpause']='containers-paused...'
    ['nerdpy update']='containers-all...'
    ['nerdpy volume create']='none'
    ['nerdpy volume inspect']='volumes...'
    ['nerdpy volume remove']='volumes...'
    ['nerdpy volume rm']='volumes...'
    ['nerdpy wait']='containers-all...'
)
declare -gA _nerdpy_nointersperse=(
    ['nerdpy']='1'
    ['nerdpy compose']='1'
    ['nerdpy compose exec']='1'
    ['nerdpy compose run']='1'
    ['nerdpy container']='1'
    ['nerdpy container create']='1'
    ['nerdpy container exec']='1'
    ['nerdpy container run']='1'
    ['nerdpy container top']='1'
    ['nerdpy create']='1'
    ['nerdpy exec']='1'
    ['nerdpy image']='1'
    ['nerdpy network']='1'
    ['nerdpy run']='1'
    ['nerdpy system']='1'
    ['nerdpy top']='1'
    ['nerdpy volume']='1'
)

# Words as the user sees them: bash splits at ':' and '=' (COMP_WORDBREAKS); join them back
# when the original line has no blank between them (as bash-completion's _get_comp_words_by_ref -n :=).
__nerdpy_words() {
    _nerdpy_w=()
    _nerdpy_cw=0
    local line="${COMP_LINE:0:${COMP_POINT:-${#COMP_LINE}}}" i j=-1 w
    [[ -z $COMP_LINE ]] && line="${COMP_WORDS[*]}"
    for ((i = 0; i < ${#COMP_WORDS[@]} && i <= COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if ((j >= 0)) && [[ $line != [[:blank:]]* ]] && [[ $w == [:=]* || ${_nerdpy_w[j]} == *[:=] ]]; then
            _nerdpy_w[j]+=$w
        else
            j=$((j + 1))
            _nerdpy_w[j]=$w
        fi
        line=${line#"${line%%[![:blank:]]*}"}
        line=${line#"$w"}
    done
    _nerdpy_cw=$j
}

# live names from the fast path (no engine, no network)
__nerdpy_live() {
    "${_nerdpy_w[0]:-nerdpy}" __complete "${_nerdpy_ctx[@]}" "$@" 2>/dev/null
}

# candidates (one per line) for a value kind, matching $1 (the word so far)
__nerdpy_values() {
    local kind=$2 cur=$1 k
    local IFS=$' \t\n'
    for k in ${kind//+/ }; do
        case $k in
            containers) compgen -W "$(__nerdpy_live containers)" -- "$cur" ;;
            containers-*) compgen -W "$(__nerdpy_live containers --${k#containers-})" -- "$cur" ;;
            images|networks|volumes|services) compgen -W "$(__nerdpy_live "$k")" -- "$cur" ;;
            files) _nerdpy_filenames=1; compgen -f -- "$cur" ;;
            dirs) _nerdpy_filenames=1; compgen -d -- "$cur" ;;
            signals) compgen -W "KILL TERM INT HUP QUIT USR1 USR2 STOP CONT ABRT ALRM PIPE WINCH SIGKILL SIGTERM SIGINT SIGHUP SIGQUIT SIGUSR1 SIGUSR2" -- "$cur" ;;
            choice=*) k=${k#choice=}; compgen -W "${k//,/ }" -- "$cur" ;;
            cp)
                if [[ $cur != *:* ]]; then
                    _nerdpy_nospace=1
                    compgen -W "$(__nerdpy_live containers --all | sed 's/$/:/')" -- "$cur"
                    _nerdpy_filenames=1
                    compgen -f -- "$cur"
                fi
                ;;
        esac
    done
}

_nerdpy() {
    local -a _nerdpy_w _nerdpy_ctx=() _nerdpy_compose=()
    local _nerdpy_cw _nerdpy_filenames=0 _nerdpy_nospace=0
    __nerdpy_words
    local cur=${_nerdpy_w[_nerdpy_cw]} cmd=nerdpy i w expect="" nargs=0 noopts=0 kind=""
    for ((i = 1; i < _nerdpy_cw; i++)); do
        w=${_nerdpy_w[i]}
        if [[ -n $expect ]]; then
            __nerdpy_remember "$cmd" "$expect" "$w"
            expect=""
            continue
        fi
        if ((noopts == 0)) && [[ $w == -?* ]]; then
            if [[ $w == -- ]]; then
                noopts=1
            elif [[ $w == --*=* ]]; then
                __nerdpy_remember "$cmd" "${w%%=*}" "${w#*=}"
            elif [[ " ${_nerdpy_valopts[$cmd]} " == *" $w "* ]]; then
                expect=$w
            fi
            continue
        fi
        if ((nargs == 0)) && [[ " ${_nerdpy_subcmds[$cmd]} " == *" $w "* ]]; then
            cmd="$cmd $w"
            continue
        fi
        nargs=$((nargs + 1))
        [[ -n ${_nerdpy_nointersperse[$cmd]} ]] && noopts=1
    done
    local -a args=(${_nerdpy_args[$cmd]})
    local IFS=$'\n'
    if [[ -n $expect ]]; then
        kind=${_nerdpy_optkind["$cmd|$expect"]}
        COMPREPLY=($(__nerdpy_values "$cur" "${kind:-none}"))
    elif ((noopts == 0)) && [[ $cur == --*=* ]]; then
        kind=${_nerdpy_optkind["$cmd|${cur%%=*}"]}
        COMPREPLY=($(__nerdpy_values "${cur#*=}" "${kind:-none}"))
        COMPREPLY=("${COMPREPLY[@]/#/${cur%%=*}=}")
    elif ((noopts == 0)) && [[ $cur == -* ]]; then
        COMPREPLY=($(IFS=$' \t\n'; compgen -W "${_nerdpy_flags[$cmd]} ${_nerdpy_valopts[$cmd]}" -- "$cur"))
    elif ((nargs == 0)) && [[ -n ${_nerdpy_subcmds[$cmd]} ]]; then
        COMPREPLY=($(IFS=$' \t\n'; compgen -W "${_nerdpy_subcmds[$cmd]}" -- "$cur"))
    elif ((${#args[@]} > 0)); then
        kind=${args[nargs]}
        if [[ -z $kind ]]; then
            kind=${args[${#args[@]} - 1]}
            [[ $kind == *... ]] || kind=none
        fi
        kind=${kind%...}
        [[ $kind == stop ]] || COMPREPLY=($(__nerdpy_values "$cur" "$kind"))
    fi
    # bash replaces only the part of the word after its last ':' or '=' break
    if [[ $cur != "${COMP_WORDS[COMP_CWORD]}" && $cur == *[:=]* ]]; then
        local strip=${cur%"${cur##*[:=]}"}
        COMPREPLY=("${COMPREPLY[@]#"$strip"}")
    fi
    ((_nerdpy_filenames)) && compopt -o filenames 2>/dev/null
    ((_nerdpy_nospace)) && compopt -o nospace 2>/dev/null
    return 0
}

# global flags and compose's file flags, passed on to `nerdpy __complete`
__nerdpy_remember() {
    case "$1|$2" in
        "nerdpy|--data-root"|"nerdpy|-n"|"nerdpy|--namespace")
            _nerdpy_ctx+=("$2" "$3") ;;
        "nerdpy compose|-f"|"nerdpy compose|--file"|"nerdpy compose|--project-directory")
            _nerdpy_ctx+=("$2" "$3") ;;
    esac
}

complete -F _nerdpy nerdpy
