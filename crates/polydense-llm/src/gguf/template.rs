//! The chat template of a GGUF file (`tokenizer.chat_template`, the Jinja template HF ships
//! with the model), rendered with minijinja the way HF `transformers` renders it:
//! `trim_blocks` and `lstrip_blocks` on, Python string methods (`.strip()`, `.startswith()`)
//! through minijinja-contrib's pycompat, and `raise_exception` defined.

use crate::error::{LlmError, Result};
use crate::request::Message;
use minijinja::{context, Environment, Error, ErrorKind};
use std::path::Path;

/// ChatML, for files without a template (it is what SmolLM2 and Qwen use).
const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// A compiled chat template with the special tokens it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
}

fn raise_exception(msg: String) -> std::result::Result<String, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

impl ChatTemplate {
    /// Compiles `source` (or ChatML when `None`) and renders a probe conversation, so that a
    /// template needing something this renderer lacks fails at load, naming the file.
    pub fn new(path: &Path, source: Option<String>, bos: &str, eos: &str) -> Result<Self> {
        let source = source.unwrap_or_else(|| {
            tracing::warn!(
                "{}: no tokenizer.chat_template; using ChatML",
                path.display()
            );
            CHATML.to_string()
        });
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("the default delimiters are valid"),
        );
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned("chat", source)
            .map_err(|e| bad_template(path, &e))?;
        let t = ChatTemplate {
            env,
            bos: bos.to_string(),
            eos: eos.to_string(),
        };
        t.render(&[Message::system("s"), Message::user("u")])
            .map_err(|e| match e {
                LlmError::Inference(m) => LlmError::Model {
                    path: path.to_path_buf(),
                    message: m,
                    hint: Some("serve this model with Ollama or llama.cpp instead".into()),
                },
                other => other,
            })?;
        Ok(t)
    }

    /// The prompt for `messages`, ending where the assistant's answer starts.
    pub fn render(&self, messages: &[Message]) -> Result<String> {
        let tmpl = self.env.get_template("chat").expect("added at load");
        let msgs: Vec<_> = messages
            .iter()
            .map(|m| context! { role => m.role.as_str(), content => m.content.as_str() })
            .collect();
        tmpl.render(context! {
            messages => msgs,
            add_generation_prompt => true,
            bos_token => self.bos.as_str(),
            eos_token => self.eos.as_str(),
        })
        .map_err(|e| LlmError::Inference(format!("chat template: {e:#}")))
    }
}

fn bad_template(path: &Path, e: &Error) -> LlmError {
    LlmError::Model {
        path: path.to_path_buf(),
        message: format!("the chat template does not compile: {e:#}"),
        hint: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_renders_with_the_generation_prompt() {
        let t = ChatTemplate::new(Path::new("m.gguf"), None, "", "<|im_end|>").unwrap();
        let p = t
            .render(&[Message::system("Be brief."), Message::user("Hi")])
            .unwrap();
        assert_eq!(
            p,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_methods_and_raise_exception_work() {
        let src = "{% for m in messages %}{% if m['role'] == 'tool' %}{{ raise_exception('no tools') }}{% endif %}{{ m['content'].strip().upper() }}|{% endfor %}";
        let t = ChatTemplate::new(Path::new("m.gguf"), Some(src.into()), "<s>", "</s>").unwrap();
        assert_eq!(t.render(&[Message::user("  hi ")]).unwrap(), "HI|");
        let err = ChatTemplate::new(
            Path::new("m.gguf"),
            Some("{{ raise_exception('only user turns') }}".into()),
            "",
            "",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("m.gguf") && err.contains("only user turns"),
            "{err}"
        );
    }
}
